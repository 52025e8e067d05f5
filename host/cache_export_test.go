package host

// Internals for the external tests of cache.go.
var (
	WazeroCacheDir = wazeroCacheDir
	CleanCacheDir  = cleanCacheDir
)
