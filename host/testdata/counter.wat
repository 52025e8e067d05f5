;; counter.wat: a contract that counts its calls in memory (at address 1024)
;; and in a mutable global, and allows only the first call of an instance.
;; With every call restored to the post-initialisation state, every call is
;; the first: the same request always gets the same decision.
(module
  (memory (export "memory") 2)
  (global $calls (mut i32) (i32.const 0))
  ;; the decision, 28 bytes at address 16; its allowed byte is at 22
  (data (i32.const 16) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (i32.store (i32.const 1024) (i32.add (i32.load (i32.const 1024)) (i32.const 1)))
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const 22)
      (i32.and (i32.eq (i32.load (i32.const 1024)) (i32.const 1))
               (i32.eq (global.get $calls) (i32.const 1))))
    (i64.const 0x100000001c)))
