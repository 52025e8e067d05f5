;; decision_oob.wat: kh_check answers with a decision pointer far outside
;; memory (0xffff0000, 28 bytes).
(module
  (memory (export "memory") 2)
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (i64.const 0xffff00000000001c)))
