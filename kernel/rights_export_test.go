package kernel

import (
	"bytes"
	"fmt"

	"github.com/kernelhost/kernelhost/store"
)

// CheckRightIndex verifies, in one snapshot, that the rights-by-holder index
// and the right artifacts agree exactly: every right has one index entry
// under its holder with its resource and amount, and every index entry has
// its right. Test-only export.
func CheckRightIndex(k *Kernel) error {
	return k.st.View(func(tx store.Txn) error {
		rights := 0
		err := tx.Iterate(prefixArtifact, nil, func(key, value []byte) error {
			art, err := decodeArtifact(value)
			if err != nil {
				return err
			}
			if art.Type != TypeRight {
				return nil
			}
			rights++
			id := string(key[len(prefixArtifact):])
			c, err := tx.Get(contentKey(id))
			if err != nil {
				return fmt.Errorf("right %q: content: %w", id, err)
			}
			rc, err := decodeRightContent(c)
			if err != nil {
				return fmt.Errorf("right %q: %w", id, err)
			}
			if !bytes.Equal(c, rc.encode()) {
				return fmt.Errorf("right %q: content %s is not canonical", id, c)
			}
			if _, err := tx.Get(governsKey(art.Contract, id)); err != nil {
				return fmt.Errorf("right %q: governs entry: %w", id, err)
			}
			v, err := tx.Get(rightKey(rc.Holder, id))
			if err != nil {
				return fmt.Errorf("right %q: index entry under %q: %w", id, rc.Holder, err)
			}
			idx, err := decodeRightIndex(v)
			if err != nil {
				return err
			}
			if idx.Resource != rc.Resource || idx.Amount != rc.Amount {
				return fmt.Errorf("right %q: index says %d %s, content %d %s", id, idx.Amount, idx.Resource, rc.Amount, rc.Resource)
			}
			return nil
		})
		if err != nil {
			return err
		}
		entries := 0
		if err := tx.Iterate(prefixRight, nil, func([]byte, []byte) error { entries++; return nil }); err != nil {
			return err
		}
		if entries != rights {
			return fmt.Errorf("%d index entries for %d rights", entries, rights)
		}
		return nil
	})
}
