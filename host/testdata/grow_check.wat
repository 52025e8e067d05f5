;; grow_check.wat: grows its memory or its table, then looks at what it got.
;; Both a contract and an executable. The delta is n = x & 0x7fffffff, where
;; x is the request's depth field (kh_check) or the first 4 bytes of args
;; (kh_invoke); bit 31 of x picks table.grow instead of memory.grow.
;;   kh_check:  allows, with as reason the 4 bytes (little-endian) of what
;;              the grow returned (-1 when refused)
;;   kh_invoke: calls kernel.call with 12 bytes: what the grow returned,
;;              memory.size and table.size, as seen during the call; then
;;              returns ok with no output
(module
  (import "kernel" "call" (func $call (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (table $t 1 funcref)
  ;; decision: allowed, no cost, payer, payee, a 4-byte reason at 44
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\04\00\00\00" "????")
  ;; invoke result: ok, no output
  (data (i32.const 1024) "KHIR\01\00\00\00\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  ;; grow by x as described above; returns what the grow returned
  (func $grow (param $x i32) (result i32)
    (if (result i32) (i32.lt_s (local.get $x) (i32.const 0))
      (then (table.grow $t (ref.null func) (i32.and (local.get $x) (i32.const 0x7fffffff))))
      (else (memory.grow (local.get $x)))))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (i32.store (i32.const 44) (call $grow (i32.load offset=12 (local.get $p))))
    (i64.const 0x1000000020))
  ;; address after the length-prefixed string at $p
  (func $skip (param $p i32) (result i32)
    (i32.add (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
  (func (export "kh_invoke") (param $p i32) (param $n i32) (result i64)
    (local $a i32)
    ;; args: after caller, target_id, target_type, created_by, access_contract, method
    (local.set $a (call $skip (call $skip (call $skip (call $skip (call $skip (call $skip
      (i32.add (local.get $p) (i32.const 48)))))))))
    (i32.store (i32.const 2048) (call $grow (i32.load offset=4 (local.get $a))))
    (i32.store (i32.const 2052) (memory.size))
    (i32.store (i32.const 2056) (table.size $t))
    (drop (call $call (i32.const 2048) (i32.const 12) (i32.const 0) (i32.const 0)))
    (i64.const 0x4000000000c)))
