package server

// AuthAddresses is the number of addresses s's failed-authentication table
// holds (TestFailedAuthRateLimited).
func AuthAddresses(s *Server) int { return s.authLim.size() }
