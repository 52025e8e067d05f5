;; table_bomb.wat: an executable whose kh_invoke grows its table by 48M
;; elements (384 MiB in wazero, 8 bytes an element) in one table.grow, as an
;; invoke once did on a 16 MiB memory quota; it traps if the growth is
;; refused and returns ok otherwise. Tables count against the memory cap.
(module
  (memory (export "memory") 2)
  (table $t 1 funcref)
  ;; the invoke result header at 1024: ok, no output
  (data (i32.const 1024) "KHIR\01\00\00\00\00\00\00\00")
  (func (export "kh_abi_version") (result i32) (i32.const 1))
  (func (export "kh_alloc") (param $n i32) (result i32)
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (return (i32.const 0))))
    (i32.const 65536))
  (func (export "kh_invoke") (param $p i32) (param $n i32) (result i64)
    (if (i32.eq (table.grow $t (ref.null func) (i32.const 48000000)) (i32.const -1))
      (then (unreachable)))
    (i64.const 0x4000000000c)))
