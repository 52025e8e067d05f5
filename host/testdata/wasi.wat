;; wasi.wat: uses the deterministic WASI subset. The decision's 16-byte reason
;; is 8 bytes from random_get followed by the realtime clock (u64 ns); it also
;; writes "hello\n" to stdout, which the host discards.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; allow with a 16-byte reason, 44 bytes at 200; the reason is at 228
  (data (i32.const 200) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\10\00\00\00")
  ;; iovec {ptr 340, len 6} at 300, text at 340
  (data (i32.const 300) "\54\01\00\00\06\00\00\00")
  (data (i32.const 340) "hello\n")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (call $random_get (i32.const 228) (i32.const 8)) (then (unreachable)))
    (if (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 236)) (then (unreachable)))
    (if (call $fd_write (i32.const 1) (i32.const 300) (i32.const 1) (i32.const 320)) (then (unreachable)))
    (i64.const 0xc80000002c)))
