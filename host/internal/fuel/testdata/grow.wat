;; Memory and table growth, checked against the memory cap (COSTS.md,
;; "Memory and table caps").
(module
  (memory 1)
  (table $t 2 funcref)
  (table $e 0 externref)

  ;; memory.grow by n pages; returns what memory.grow returned.
  (func (export "grow_mem") (param $n i32) (result i32)
    local.get $n
    memory.grow)

  ;; table.grow $t by n null entries; returns what table.grow returned.
  (func (export "grow_table") (param $n i32) (result i32)
    ref.null func
    local.get $n
    table.grow $t)

  ;; table.grow $e, whose minimum is 0, by n.
  (func (export "grow_ext") (param $n i32) (result i32)
    ref.null extern
    local.get $n
    table.grow $e)

  (func (export "mem_size") (result i32) memory.size)
  (func (export "table_size") (result i32) (i32.add (table.size $t) (table.size $e)))
)
