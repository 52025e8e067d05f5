;; cost_max_victim.wat: allows at a cost of 2^64-1 scrip and names principal
;; "victim" as the payer.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\ff\ff\ff\ff\ff\ff\ff\ff" "\06\00\00\00victim" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (i64.const 0x1000000022)))
