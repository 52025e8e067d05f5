package kernel

import (
	"slices"
)

// This file holds what a reader of the audit trail outside the kernel (the
// HTTP server's filters, lookups and live follow) needs to apply the
// kernel's visibility rule itself on pages it read with Events, instead of
// reimplementing it: Involves (events.go) decides whether a principal sees
// an event, ViewFor how it sees it.

// ViewFor returns the event as principal may see it when principal is a
// party to it (Involves): exactly what EventsFor returns for it. A right's
// holder is withheld from a caller refused for not holding it. A reader
// that filters events for a principal must filter the view, never the
// event as recorded: a filter on a withheld field would otherwise reveal it
// (mallory asking for the events of principal alice would learn that alice
// holds the right she probed).
func (e Event) ViewFor(principal string) Event { return e.viewFor(principal) }

// Kinds returns every action kind the kernel knows, sorted: the kinds an
// audit event can have. The slice is the caller's.
func Kinds() []Kind {
	out := make([]Kind, 0, len(actionFields))
	for k := range actionFields {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// KnownKind reports whether k is the kind of an event the kernel writes:
// an action kind, or llm_call (a settled LLM call, which no client sends).
func KnownKind(k Kind) bool {
	_, ok := actionFields[k]
	return ok || k == KindLLMCall
}
