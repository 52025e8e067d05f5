;; random_init.wat: random_start.wat's loop in _initialize: 2000 calls of
;; random_get(16 MiB). It was accepted after 16 s; now it runs out of its
;; initialisation fuel at the first call.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 256)
  (func (export "_initialize") (local $i i32)
    (local.set $i (i32.const 2000))
    (loop $again
      (drop (call $random_get (i32.const 0) (i32.const 16777216)))
      (br_if $again (local.tee $i (i32.sub (local.get $i) (i32.const 1))))))
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kh_check") (param i32 i32) (result i64) (i64.const 0)))
