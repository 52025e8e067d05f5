;; grow_init_big.wat: a contract that declares 3 pages (192 KiB) and grows its
;; memory by 3 pages in _initialize, past the 128 KiB up to which the host
;; tracks writes by one range: it is tracked by pages either way, and
;; preparing it runs (and reports) the same fuel as its twin grow_init_small.wat.
;; It allows a call only when the byte it is about to write, in the last
;; page, is zero.
(module
  (memory (export "memory") 3)
  ;; the decision, 28 bytes at address 16; its allowed byte is at 22
  (data (i32.const 16) "KHDC\01\00\00\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "_initialize") (drop (memory.grow (i32.const 3))))
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 32768)) (then (return (i32.const 0))))
    (i32.const 1024))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (local $top i32)
    (local.set $top (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 1)))
    (i32.store8 (i32.const 22) (i32.eqz (i32.load8_u (local.get $top))))
    (i32.store8 (local.get $top) (i32.const 1))
    (i64.const 0x100000001c)))
