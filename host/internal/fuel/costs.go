package fuel

// CostTableVersion is the version of the cost table below. It changes
// whenever any cost, or the placement of charges, changes, so that the same
// module and input can give a different fuel count only under a different
// version. Hosts put it in their compilation cache key.
//
// Version 2 left the instruction costs below as they were: the host started
// charging host calls by their bytes, counting kh_alloc's fuel in the call
// that needs it and running a start function as a call (COSTS.md, "Host
// calls" and "kh_alloc and initialisation"), which changes fuel counts.
const CostTableVersion = 2

// The cost table, version 2, in fuel units. One unit is roughly one simple
// instruction. The rationale is in COSTS.md.
//
// Every instruction costs [CostDefault] unless listed here. Costs are charged
// ahead, once per straight-line run of code: at the start of each function
// body, of each block, loop, if and else body, after each end of a nested
// block and after each br_if (the fall-through), for the instructions up to
// the next control instruction (block, loop, if, else, end, br, br_if,
// br_table, return, unreachable). Calls do not end a run: the code after a
// call is charged with the code before it. Bulk operations are charged
// again, at the operation, for their size operand.
const (
	// CostDefault is the cost of every instruction not listed below.
	CostDefault = 1
	// CostStructural is the cost of block, loop, else and end, which mark
	// structure and compile to no work of their own.
	CostStructural = 0
	// CostBrTable is the cost of br_table (a bounds check and an indirect
	// jump).
	CostBrTable = 2
	// CostCall is the cost of call (frame setup and teardown).
	CostCall = 5
	// CostCallIndirect is the cost of call_indirect (a table bounds check, a
	// signature check and an indirect call).
	CostCallIndirect = 10
	// CostDivRem is the cost of integer division and remainder
	// (i32/i64 div_s, div_u, rem_s, rem_u) and of f32/f64 div and sqrt.
	CostDivRem = 4
	// CostMemoryAccess is the cost of every load and store (an address
	// computation and a bounds check besides the access).
	CostMemoryAccess = 2
	// CostGlobal is the cost of global.get and global.set.
	CostGlobal = 1
	// CostMemoryGrow is the fixed cost of memory.grow; it also costs
	// CostMemoryGrowPerPage for each 64 KiB page asked for, whether or not
	// the growth succeeds.
	CostMemoryGrow = 100
	// CostMemoryGrowPerPage is the cost of each page asked of memory.grow.
	CostMemoryGrowPerPage = 1024
	// CostBulkMemory is the fixed cost of memory.fill, memory.copy and
	// memory.init; each also costs CostBulkMemoryPerByte per byte of its
	// size operand, charged before the operation runs (so an out-of-bounds
	// operation that traps is still charged).
	CostBulkMemory = 10
	// CostBulkMemoryPerByte is the cost of each byte of a bulk memory
	// operation's size operand.
	CostBulkMemoryPerByte = 1
	// CostTableGrow is the fixed cost of table.grow, table.fill, table.copy
	// and table.init; each also costs CostTablePerElement per element of
	// its size operand.
	CostTableGrow = 10
	// CostTablePerElement is the cost of each element of a bulk table
	// operation's size operand.
	CostTablePerElement = 4
)

// MaxFuel is the largest budget a host may set. Every charge is at most
// 2^32 × CostMemoryGrowPerPage (under 2^43), so fuel starting at or below
// MaxFuel can never wrap around: it goes negative, and the guest traps,
// first.
const MaxFuel = 1<<62 - 1

// opCost is the static cost of a one-byte opcode. Prefixed (0xfc) opcodes
// are costed in the decoder.
var opCost = func() (t [256]uint8) {
	for i := range t {
		t[i] = CostDefault
	}
	for _, op := range []byte{opBlock, opLoop, opElse, opEnd} {
		t[op] = CostStructural
	}
	t[opBrTable] = CostBrTable
	t[opCall] = CostCall
	t[opCallIndirect] = CostCallIndirect
	t[opGlobalGet] = CostGlobal
	t[opGlobalSet] = CostGlobal
	for op := 0x28; op <= 0x3e; op++ {
		t[op] = CostMemoryAccess
	}
	for _, op := range []byte{
		0x6d, 0x6e, 0x6f, 0x70, // i32.div_s, i32.div_u, i32.rem_s, i32.rem_u
		0x7f, 0x80, 0x81, 0x82, // i64.div_s, i64.div_u, i64.rem_s, i64.rem_u
		0x91, 0x95, // f32.sqrt, f32.div
		0x9f, 0xa3, // f64.sqrt, f64.div
	} {
		t[op] = CostDivRem
	}
	t[opMemoryGrow] = CostMemoryGrow
	return t
}()
