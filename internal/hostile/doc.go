// Package hostile is a corpus of hostile WebAssembly modules and the tests
// that deploy them, as access contracts and executables, through the public
// kernel API on a kernel with the real host. Each module tries one attack;
// the tests check that it is denied (or rejected at deploy) with its
// documented code and changes nothing, while other principals keep working.
//
// The modules are testdata/*.wat with their committed .wasm (make testdata
// rebuilds them; TestTestdataReproducible checks them). The package has no
// non-test code.
package hostile
