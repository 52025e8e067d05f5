;; Functions with known results, run both original and instrumented by
;; fuel's tests: recursion, loops, if/else, br_table, call_indirect,
;; multi-value blocks, bulk memory and memory.grow.
(module
  (type $i2i (func (param i32) (result i32)))
  (memory (export "memory") 1 100)
  (table 2 funcref)
  (elem (i32.const 0) $fac $fib)
  (global $counter (mut i32) (i32.const 0))

  ;; straight-line code only: one charge.
  (func (export "straight") (param $a i32) (param $b i32) (result i32)
    local.get $a
    local.get $b
    i32.mul
    i32.const 7
    i32.add)

  (func $fac (export "fac") (param $n i64) (result i64)
    local.get $n
    i64.const 2
    i64.lt_u
    if (result i64)
      i64.const 1
    else
      local.get $n
      local.get $n
      i64.const 1
      i64.sub
      call $fac
      i64.mul
    end)

  ;; fib(n), iteratively.
  (func $fib (export "fib") (param $n i32) (result i32)
    (local $a i32) (local $b i32) (local $t i32)
    i32.const 1
    local.set $b
    block $done
      loop $next
        local.get $n
        i32.eqz
        br_if $done
        local.get $a
        local.get $b
        i32.add
        local.set $t
        local.get $b
        local.set $a
        local.get $t
        local.set $b
        local.get $n
        i32.const 1
        i32.sub
        local.set $n
        br $next
      end
    end
    local.get $a)

  ;; sum of 0..n-1, a loop of exactly n iterations (n >= 1): the loop of
  ;; TestFuel_loopLinear, whose fuel is a*n+b.
  (func (export "sum") (param $n i32) (result i64)
    (local $i i32) (local $s i64)
    loop $next
      local.get $s
      local.get $i
      i64.extend_i32_u
      i64.add
      local.set $s
      local.get $i
      i32.const 1
      i32.add
      local.tee $i
      local.get $n
      i32.lt_u
      br_if $next
    end
    local.get $s)

  ;; collatz steps: loop with if/else and div/rem.
  (func (export "collatz") (param $n i64) (result i32)
    (local $steps i32)
    block $done
      loop $next
        local.get $n
        i64.const 1
        i64.le_u
        br_if $done
        local.get $n
        i64.const 2
        i64.rem_u
        i64.eqz
        if
          local.get $n
          i64.const 2
          i64.div_u
          local.set $n
        else
          local.get $n
          i64.const 3
          i64.mul
          i64.const 1
          i64.add
          local.set $n
        end
        local.get $steps
        i32.const 1
        i32.add
        local.set $steps
        br $next
      end
    end
    local.get $steps)

  ;; br_table dispatch and a multi-value block.
  (func (export "switch") (param $x i32) (result i32)
    block $c
      block $b
        block $a
          local.get $x
          br_table $a $b $c
        end
        i32.const 10
        return
      end
      i32.const 20
      return
    end
    i32.const 1
    i32.const 2
    block (param i32 i32) (result i32)
      i32.add
    end
    local.get $x
    i32.add)

  ;; call_indirect through the table: 0 is fac(10) (as i32), 1 fib(20).
  (func (export "indirect") (param $which i32) (result i32)
    local.get $which
    i32.eqz
    if (result i32)
      i64.const 10
      call $fac
      i32.wrap_i64
    else
      i32.const 20
      local.get $which
      call_indirect (type $i2i)
    end)

  ;; fills n bytes at 1024 with v, copies them to 1024+n, returns the sum
  ;; of the copy, bytewise.
  (func (export "memops") (param $n i32) (param $v i32) (result i32)
    (local $i i32) (local $s i32)
    i32.const 1024
    local.get $v
    local.get $n
    memory.fill
    i32.const 1024
    local.get $n
    i32.add
    i32.const 1024
    local.get $n
    memory.copy
    block $done
      loop $next
        local.get $i
        local.get $n
        i32.ge_u
        br_if $done
        local.get $s
        i32.const 1024
        local.get $n
        i32.add
        local.get $i
        i32.add
        i32.load8_u
        i32.add
        local.set $s
        local.get $i
        i32.const 1
        i32.add
        local.set $i
        br $next
      end
    end
    local.get $s)

  ;; memory.grow by n pages, returns the old size (or -1).
  (func (export "grow") (param $n i32) (result i32)
    local.get $n
    memory.grow)

  ;; a global counter, to check that instrumentation leaves globals alone.
  (func (export "bump") (result i32)
    global.get $counter
    i32.const 1
    i32.add
    global.set $counter
    global.get $counter)

  ;; runaways: each must end with a trap.
  (func (export "spin")
    loop $forever
      br $forever
    end)

  (func $recurse (export "recurse") (param $n i32) (result i32)
    local.get $n
    i32.eqz
    if (result i32)
      i32.const 0
    else
      local.get $n
      i32.const 1
      i32.sub
      call $recurse
      i32.const 1
      i32.add
    end)

  (func (export "fill_bomb")
    loop $again
      i32.const 0
      i32.const 0
      i32.const 65536
      memory.fill
      br $again
    end)

  (func (export "copy_bomb")
    loop $again
      i32.const 0
      i32.const 32768
      i32.const 32768
      memory.copy
      br $again
    end)
)
