;; grow_size.wat: kh_check grows memory by 64 pages (4 MiB), then checks
;; memory.size: it answers "allowed" only if it really holds the memory,
;; and traps otherwise. With a memory quota below that, the growth must be
;; refused inside the call (memory.grow returns -1), not only found out
;; after it.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "KHDC\01\00\01\00" "\00\00\00\00\00\00\00\00" "\00\00\00\00" "\00\00\00\00" "\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_check") (param $p i32) (param $n i32) (result i64)
    (drop (memory.grow (i32.const 64)))
    (if (i32.lt_u (memory.size) (i32.const 66)) (then (unreachable)))
    (i64.const 0x100000001c)))
