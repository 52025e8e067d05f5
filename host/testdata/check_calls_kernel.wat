;; check_calls_kernel.wat: a contract that tries to call the kernel during a
;; check. kernel.call must answer -1 (no host calls in checks): then it
;; allows; any other answer denies.
(module
  (import "kernel" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 64) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 128) "{\"query\":\"balance\",\"principal\":\"x\"}")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (result i64) (i32.eq (call $call (i32.const 128) (i32.const 35) (i32.const 256) (i32.const 256)) (i32.const -1))
      (then (i64.const 0x100000001c))    ;; allow at 16
      (else (i64.const 0x400000001c)))))  ;; deny at 64
