;; random_start.wat: the start function asks random_get for 16 MiB, its whole
;; memory, 2000 times. Fuel saw each call as one call instruction and nothing
;; watched the start function: it ran 30 s or more before CONTRACT_INVALID.
;; random_get costs fuel per byte now: the first call exhausts the
;; initialisation budget.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 256)
  (func $fill (local $i i32)
    (local.set $i (i32.const 2000))
    (loop $again
      (drop (call $random_get (i32.const 0) (i32.const 16777216)))
      (br_if $again (local.tee $i (i32.sub (local.get $i) (i32.const 1))))))
  (start $fill)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "kh_check") (param i32 i32) (result i64) (i64.const 0)))
