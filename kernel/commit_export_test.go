package kernel

// QueuedJobs returns the attempts waiting for the committer. Test-only
// export, for tests that line actions up into one batch.
func QueuedJobs(k *Kernel) int { return len(k.com.jobs) }
