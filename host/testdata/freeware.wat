;; freeware.wat: a contract that really parses the request (SPEC.md section 3).
;; read and invoke are allowed for everyone; write, edit, delete and
;; set_contract only when caller equals created_by; unknown actions are denied.
(module
  (memory (export "memory") 2)
  ;; allow, 28 bytes at 16
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  ;; deny "caller is not the creator", 28+25 = 53 bytes at 64
  (data (i32.const 64) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\19\00\00\00" "caller is not the creator")
  ;; deny "unknown action", 28+14 = 42 bytes at 128
  (data (i32.const 128) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\0e\00\00\00" "unknown action")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  ;; $skip returns the offset just past the str at $off.
  (func $skip (param $off i32) (result i32)
    (i32.add (i32.add (local.get $off) (i32.const 4)) (i32.load (local.get $off))))
  ;; $eq compares $n bytes at $a and $b.
  (func $eq (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b)))
          (then (return (i32.const 0))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 1))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $action i32) (local $caller i32) (local $created i32)
    (local.set $action (i32.load16_u offset=6 (local.get $p)))
    ;; caller is the first str at offset 48; created_by is the fourth
    (local.set $caller (i32.add (local.get $p) (i32.const 48)))
    (local.set $created
      (call $skip (call $skip (call $skip (local.get $caller)))))
    (if (i32.or (i32.eq (local.get $action) (i32.const 1)) (i32.eq (local.get $action) (i32.const 5)))
      (then (return (i64.const 0x100000001c))))
    (if (i32.or (i32.lt_u (local.get $action) (i32.const 1)) (i32.gt_u (local.get $action) (i32.const 6)))
      (then (return (i64.const 0x800000002a))))
    (if (i32.and
          (i32.eq (i32.load (local.get $caller)) (i32.load (local.get $created)))
          (call $eq
            (i32.add (local.get $caller) (i32.const 4))
            (i32.add (local.get $created) (i32.const 4))
            (i32.load (local.get $caller))))
      (then (return (i64.const 0x100000001c))))
    (i64.const 0x4000000035)))
