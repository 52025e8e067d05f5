// Package abitest holds requests shared by the tests and benchmarks of
// several packages (host, abi, host/internal/fuel and the bench/peers
// module), so that every row of a comparison decides the same request.
package abitest
