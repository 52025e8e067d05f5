package kernel

import (
	"context"

	"github.com/kernelhost/kernelhost/abi"
	"github.com/kernelhost/kernelhost/store"
)

// ArtifactIDs returns the id of every artifact in the world, in ascending
// byte order. The slice is the caller's.
//
// Ids are not secret: like principals and their balances they are facts of
// the world, needed to address artifacts at all. An artifact's content and
// metadata are secret, though, and ArtifactIDs returns neither: a caller that
// shows more than ids (a listing of what a principal may see, a "describe")
// must run that principal's read check on each artifact first, through Do or
// Explain. No path returns content or metadata without the read check (see
// docs/ARCHITECTURE.md; the rule comes from "Lessons from the upstream Python kernel").
//
// Cost is linear in the number of artifacts: for tools and listings, not hot
// paths. Errors: UNAVAILABLE once closed, INTERNAL on storage failure.
func (k *Kernel) ArtifactIDs(ctx context.Context) ([]string, error) {
	if !k.enter() {
		return nil, closedErr()
	}
	defer k.exit()
	var out []string
	err := k.st.View(func(tx store.Txn) error {
		return tx.Iterate(prefixArtifact, nil, func(key, _ []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			out = append(out, string(key[len(prefixArtifact):]))
			return nil
		})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Code: abi.Unavailable, Msg: "listing artifacts interrupted", Err: err}
		}
		return nil, storeErr(err)
	}
	return out, nil
}
