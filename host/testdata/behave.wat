;; behave.wat: misbehaves on demand. The request's depth field (offset 12)
;; selects what kh_check does:
;;   0 allow                         5 decision length 2000 (> 1308)
;;   1 trap (unreachable)            6 malformed decision (bad magic)
;;   2 infinite loop                 7 grow memory by 4 pages, then allow
;;   3 memory.grow until -1, trap    8 decision that runs past the end of memory
;;   4 decision pointer out of memory
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (block $b8 (block $b7 (block $b6 (block $b5 (block $b4 (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 $b4 $b5 $b6 $b7 $b8 $b0 (i32.load offset=12 (local.get $p))))
      ;; 0: allow
      (return (i64.const 0x100000001c)))
      ;; 1: trap
      (unreachable))
      ;; 2: spin forever
      (loop $spin (br $spin))
      (unreachable))
      ;; 3: grow until the limit refuses, then trap
      (loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
      (unreachable))
      ;; 4: pointer far outside memory
      (return (i64.const 0xffff00000000001c)))
      ;; 5: length above the decision limit
      (return (i64.const 0x00000010000007d0)))
      ;; 6: 28 zero bytes at address 0
      (return (i64.const 0x000000000000001c)))
      ;; 7: grow 4 pages, then allow
      (drop (memory.grow (i32.const 4)))
      (return (i64.const 0x100000001c)))
    ;; 8: the last 10 bytes of memory, length 28
    (i64.or
      (i64.shl
        (i64.extend_i32_u (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 10)))
        (i64.const 32))
      (i64.const 28))))
