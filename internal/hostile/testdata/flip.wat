;; flip.wat: tries to allow only half the time. It reads 8 bytes of
;; random_get and the realtime and monotonic clocks and allows when the lowest
;; bit of their sum is 1. The host's deterministic WASI view must make it
;; answer the same for the same request on every call, on every instance.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 2)
  ;; allow at 16, deny at 64, both 28 bytes
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 64) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (call $random_get (i32.const 128) (i32.const 8)) (then (unreachable)))
    (if (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 136)) (then (unreachable)))
    (if (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 144)) (then (unreachable)))
    (if (result i64)
      (i32.eqz (i64.eqz (i64.and
        (i64.add (i64.add (i64.load (i32.const 128)) (i64.load (i32.const 136))) (i64.load (i32.const 144)))
        (i64.const 1))))
      (then (i64.const 0x100000001c))
      (else (i64.const 0x400000001c)))))
