;; Reference types and bulk table operations, charged per element.
(module
  (table $t 4 100 funcref)
  (table $ext 0 externref)
  (elem $e func $one $two)
  (func $one (result i32) i32.const 1)
  (func $two (result i32) i32.const 2)

  ;; grows $t by n null entries, fills them with $two, returns the new size.
  (func (export "grow_fill") (param $n i32) (result i32)
    (local $old i32)
    ref.null func
    local.get $n
    table.grow $t
    local.set $old
    local.get $old
    ref.func $two
    local.get $n
    table.fill $t
    table.size $t)

  ;; copies elements in, then calls entry i.
  (func (export "init_call") (param $i i32) (result i32)
    i32.const 0
    i32.const 0
    i32.const 2
    table.init $t $e
    i32.const 2
    i32.const 0
    i32.const 2
    table.copy $t $t
    elem.drop $e
    local.get $i
    call_indirect $t (result i32))

  (func (export "is_null") (param $r externref) (result i32)
    local.get $r
    ref.is_null
    i32.const 0
    table.get $t
    ref.is_null
    i32.add)
)
