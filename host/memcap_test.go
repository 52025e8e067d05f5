package host_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/host"
)

const page = 65536

// tableBit makes testdata/grow_check.wat grow its table instead of its
// memory.
const tableBit = 1 << 31

// growCheck asks testdata/grow_check.wat's kh_check to grow by x (see the
// module) and returns what the grow returned, what the call used and its
// error.
func growCheck(t *testing.T, h *host.Host, hash [32]byte, x uint32, lim abi.Limits) (int32, abi.Usage, error) {
	t.Helper()
	req := request(abi.ActionRead, "alice", "alice")
	req.Depth = x
	d, use, err := h.Evaluate(context.Background(), hash, req, lim)
	if err != nil {
		return 0, use, err
	}
	require.True(t, d.Allowed)
	require.Len(t, d.Reason, 4)
	return int32(binary.LittleEndian.Uint32([]byte(d.Reason))), use, nil
}

// growInvoke asks grow_check.wat's kh_invoke to grow by x and returns what
// it reported through kernel.call during the call: what the grow returned,
// memory.size in pages and table.size.
func growInvoke(t *testing.T, h *host.Host, hash [32]byte, x uint32, lim abi.Limits) (seen [3]int32, use abi.Usage) {
	t.Helper()
	calls := &fakeCalls{}
	res, use, err := h.Invoke(context.Background(), hash, invokeReq("grow", string(binary.LittleEndian.AppendUint32(nil, x))), lim, calls)
	require.NoError(t, err)
	require.True(t, res.OK)
	require.Len(t, calls.reqs, 1)
	b := []byte(calls.reqs[0])
	require.Len(t, b, 12)
	for i := range seen {
		seen[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return seen, use
}

// TestMemoryCapDuringCall: a guest can never hold more memory than the
// smaller of the host's limit and the caller's quota, not even for part of
// a call. A memory.grow past the cap returns -1 inside the call, so the
// guest that checks what it got sees the refusal (and a kernel call made
// after the grow sees the memory unchanged), the call succeeds with its
// memory as it was, and the instance stays poolable. Before, the cap was
// checked only after the call returned: the guest ran with the memory it
// grew, up to the host's limit. Metered and unmetered hosts alike.
func TestMemoryCapDuringCall(t *testing.T) {
	for _, metered := range []bool{true, false} {
		name := map[bool]string{true: "metered", false: "unmetered"}[metered]
		t.Run(name, func(t *testing.T) {
			tests := []struct {
				name  string
				pages uint32 // asked of memory.grow (the module starts with 2)
				lim   uint64 // the caller's memory quota; 0: none
				want  int32  // what memory.grow returns
				after uint64 // memory after the call, tables included (1 element)
			}{
				{"under the caller's quota", 2, 5 * page, 2, 4*page + 8},
				{"exactly the caller's quota", 1, 3*page + 8, 2, 3*page + 8},
				{"past the caller's quota by a byte", 1, 3*page + 7, -1, 2*page + 8},
				{"past the caller's quota", 4, 4 * page, -1, 2*page + 8},
				{"past the host's limit, no quota", 15, 0, -1, 2*page + 8},
				{"quota above the host's limit", 15, 64 * page, -1, 2*page + 8},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					h := newHost(t, host.Config{MemoryLimitBytes: 16 * page, DisableMetering: !metered, MaxInstancesPerModule: 1})
					hash := prepare(t, h, "grow_check")
					lim := abi.Limits{MemoryBytes: tc.lim}
					got, use, err := growCheck(t, h, hash, tc.pages, lim)
					require.NoError(t, err, "a refused grow is the guest's to handle")
					require.Equal(t, tc.want, got)
					require.Equal(t, tc.after, use.MemoryBytes)

					// An executable that calls the kernel after growing sees
					// the memory the cap allowed, during the call. (A fresh
					// host: the check grew the instance.)
					h = newHost(t, host.Config{MemoryLimitBytes: 16 * page, DisableMetering: !metered, InvokeTimeout: time.Minute})
					hash = prepare(t, h, "grow_check")
					seen, use := growInvoke(t, h, hash, tc.pages, lim)
					require.Equal(t, tc.want, seen[0])
					require.Equal(t, int32((tc.after-8)/page), seen[1], "memory.size during the call")
					require.Equal(t, tc.after, use.MemoryBytes)
				})
			}
		})
	}

	t.Run("a grown instance is not given to a caller with a smaller quota", func(t *testing.T) {
		h := newHost(t, host.Config{MaxInstancesPerModule: 1})
		hash := prepare(t, h, "grow_check")
		_, use, err := growCheck(t, h, hash, 8, abi.Limits{})
		require.NoError(t, err)
		require.Equal(t, uint64(10*page+8), use.MemoryBytes)
		got, use, err := growCheck(t, h, hash, 0, abi.Limits{MemoryBytes: 4 * page})
		require.NoError(t, err)
		require.Equal(t, int32(2), got, "a fresh instance: 2 pages")
		require.Equal(t, uint64(2*page+8), use.MemoryBytes)
	})

	t.Run("a quota below what the module needs once initialised fails cleanly", func(t *testing.T) {
		h := newHost(t, host.Config{})
		hash := prepare(t, h, "grow_check")
		before := h.Stats().Modules[hash]
		_, _, err := growCheck(t, h, hash, 0, abi.Limits{MemoryBytes: 2*page + 7})
		require.ErrorIs(t, err, host.ErrMemoryLimit)
		require.Equal(t, abi.ContractFailed, codeOf(err))
		require.ErrorContains(t, err, "needs 131080 bytes of memory and tables once initialised, the call's limit is 131079")
		_, _, err = h.Invoke(context.Background(), hash, invokeReq("grow", "\x00\x00\x00\x00"), abi.Limits{MemoryBytes: page}, &fakeCalls{})
		require.ErrorIs(t, err, host.ErrMemoryLimit)
		after := h.Stats().Modules[hash]
		require.Equal(t, before.Instantiated, after.Instantiated, "nothing instantiated for a call that cannot fit")
		require.Equal(t, before.Discarded, after.Discarded, "the pool is left as it was")
		got, _, err := growCheck(t, h, hash, 0, abi.Limits{MemoryBytes: 2*page + 8})
		require.NoError(t, err)
		require.Equal(t, int32(2), got)
	})

	t.Run("a guest that traps on the refusal fails with ErrMemoryLimit", func(t *testing.T) {
		h := newHost(t, host.Config{MemoryLimitBytes: 1 << 20})
		hash := prepare(t, h, "behave") // mode 3: grow a page at a time until -1, then trap
		_, use, err := h.Evaluate(context.Background(), hash, behave(3), abi.Limits{MemoryBytes: 5 * page})
		require.ErrorIs(t, err, host.ErrMemoryLimit)
		require.ErrorContains(t, err, "the limit is 327680")
		require.LessOrEqual(t, use.MemoryBytes, uint64(5*page))
	})
}

// TestTableGrowCapped: tables count against the same cap as linear memory,
// 8 bytes an element. One invoke used to grow a table by 48M elements (384
// MiB, held by the pooled instance) on a 16 MiB quota, bounded only by
// fuel; now table.grow past the cap returns -1 during the call, and the
// memory a call reports counts the table.
func TestTableGrowCapped(t *testing.T) {
	const bomb = 48_000_000
	for _, metered := range []bool{true, false} {
		name := map[bool]string{true: "metered", false: "unmetered"}[metered]
		t.Run(name, func(t *testing.T) {
			// Host limit 64 MiB; fuel for a check that asks for 48M elements, and
			// time for a table of 16 MiB on a loaded machine under -race.
			h := newHost(t, host.Config{DisableMetering: !metered, CheckFuel: 1 << 30, InvokeTimeout: time.Minute})
			hash := prepare(t, h, "grow_check")
			quota := abi.Limits{MemoryBytes: 16 << 20}

			seen, use := growInvoke(t, h, hash, tableBit|bomb, quota)
			require.Equal(t, [3]int32{-1, 2, 1}, seen, "the 48M-element grow is refused during the call")
			require.Equal(t, uint64(2*page+8), use.MemoryBytes)
			require.Less(t, h.Stats().PoolBytes, uint64(1<<20), "the pool holds no table of megabytes")

			got, _, err := growCheck(t, h, hash, tableBit|bomb, abi.Limits{})
			require.NoError(t, err)
			require.Equal(t, int32(-1), got, "past the host's 64 MiB limit too")

			// Up to the cap exactly: what the memory leaves, 8 bytes an element.
			room := uint32((quota.MemoryBytes - 2*page - 8) / 8)
			seen, use = growInvoke(t, h, hash, tableBit|room, quota)
			require.Equal(t, [3]int32{1, 2, int32(room) + 1}, seen)
			require.Equal(t, quota.MemoryBytes, use.MemoryBytes, "the table counts in the memory used")
			// No call inherits that table: an instance whose table or memory
			// grew is discarded (SPEC section 7), so the next call starts
			// from the initial table of 1 element and 2 pages.
			got, _, err = growCheck(t, h, hash, tableBit|1, quota)
			require.NoError(t, err)
			require.Equal(t, int32(1), got)
			got, _, err = growCheck(t, h, hash, 1, quota)
			require.NoError(t, err)
			require.Equal(t, int32(2), got)
		})
	}
}
