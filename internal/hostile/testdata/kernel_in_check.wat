;; kernel_in_check.wat: during a check, asks the kernel to transfer 5 scrip
;; from the caller to "mallory". kernel.call must answer -1 (no host calls in
;; checks): then it denies with reason "kernel.call refused"; any other answer
;; allows, and the attack would have reached the kernel.
(module
  (import "kernel" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; deny, reason "kernel.call refused" (19 bytes)
  (data (i32.const 64) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\13\00\00\00kernel.call refused")
  (data (i32.const 128) "{\"action\":{\"kind\":\"transfer\",\"to\":\"mallory\",\"amount\":5}}")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (if (result i64) (i32.eq (call $call (i32.const 128) (i32.const 56) (i32.const 512) (i32.const 512)) (i32.const -1))
      (then (i64.const 0x400000002f))     ;; deny at 64, 47 bytes
      (else (i64.const 0x100000001c)))))  ;; allow at 16
