;; A compute-heavy guest for BenchmarkMetered: n rounds of xorshift32.
(module
  (func (export "compute") (param $n i32) (result i32)
    (local $i i32) (local $x i32)
    i32.const 1
    local.set $x
    loop $next
      local.get $x
      i32.const 13
      i32.shl
      local.get $x
      i32.xor
      local.set $x
      local.get $x
      i32.const 17
      i32.shr_u
      local.get $x
      i32.xor
      local.set $x
      local.get $x
      i32.const 5
      i32.shl
      local.get $x
      i32.xor
      local.set $x
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      local.get $n
      i32.lt_u
      br_if $next
    end
    local.get $x))
