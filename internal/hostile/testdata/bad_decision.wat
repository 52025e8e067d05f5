;; bad_decision.wat: a malformed 28-byte decision whose defect depends on the
;; request's action (u16 at offset 6):
;;   1 read          bad magic "KHDX"
;;   2 write         allowed byte 2
;;   3 edit          reserved byte 1
;;   4 delete        version 2
;;   5 invoke        one trailing byte (29 bytes)
;;   6 set_contract  payer length 200 (> 128)
(module
  (memory (export "memory") 2)
  (data (i32.const 0)   "KHDX\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 32)  "KHDC\01\00\02\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 64)  "KHDC\01\00\01\01" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 96)  "KHDC\02\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (data (i32.const 128) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00")
  (data (i32.const 160) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\c8\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $a i32)
    (local.set $a (i32.load16_u offset=6 (local.get $p)))
    (if (i32.eq (local.get $a) (i32.const 5)) (then (return (i64.const 0x800000001d))))
    ;; action a (1..6) -> decision at (a-1)*32, 28 bytes
    (i64.or
      (i64.shl (i64.extend_i32_u (i32.mul (i32.sub (local.get $a) (i32.const 1)) (i32.const 32))) (i64.const 32))
      (i64.const 28))))
