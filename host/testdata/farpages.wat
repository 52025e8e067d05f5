;; farpages.wat: a contract with a 512 KiB memory (tracked by pages) that
;; allows a call only when the bytes it is about to write are all zero, and
;; writes them: for a request shorter than 256 bytes, one byte at 140000 and
;; one at 500000 (350 KiB apart); for a longer one, one byte in each of 300
;; pages from 140000 (more pages than the page list holds). With every call
;; restored to the post-initialisation state, every call is allowed.
(module
  (memory (export "memory") 8)
  ;; the decision, 28 bytes at address 16; its allowed byte is at 22
  (data (i32.const 16) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 61440)) (then (return (i32.const 0))))
    (i32.const 65536))
  ;; touch returns seen with the byte at a or'ed in, and sets that byte.
  (func $touch (param $a i32) (param $seen i32) (result i32)
    (local.set $seen (i32.or (local.get $seen) (i32.load8_u (local.get $a))))
    (i32.store8 (local.get $a) (i32.const 1))
    (local.get $seen))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $seen i32) (local $a i32) (local $i i32)
    (if (i32.lt_u (local.get $n) (i32.const 256))
      (then
        (local.set $seen (call $touch (i32.const 140000) (i32.const 0)))
        (local.set $seen (call $touch (i32.const 500000) (local.get $seen))))
      (else
        (local.set $a (i32.const 140000))
        (local.set $i (i32.const 300))
        (loop $l
          (local.set $seen (call $touch (local.get $a) (local.get $seen)))
          (local.set $a (i32.add (local.get $a) (i32.const 1024)))
          (br_if $l (local.tee $i (i32.sub (local.get $i) (i32.const 1)))))))
    (i32.store8 (i32.const 22) (i32.eqz (local.get $seen)))
    (i64.const 0x100000001c)))
