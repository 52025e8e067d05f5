;; loop_check.wat: kh_check never returns. Stopped by the call's deadline (the
;; caller's remaining cpu_rate) or, with fuel metering, by its fuel budget.
(module
  (memory (export "memory") 2)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (loop $spin (br $spin))
    (unreachable)))
