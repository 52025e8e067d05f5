// Package genesis holds a world's starting state: the genesis access
// contracts (C modules embedded from contracts-wasm), the genesis file format
// that names the first principals and their balances, and Install, which
// writes both into a fresh kernel.
package genesis
