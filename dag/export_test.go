package dag

// WithoutGHOSTDAG makes the DAG of a benchmark's baseline: the index as it
// was before GHOSTDAG (selected parent and work summed per block, headers
// stored alone), to measure what GHOSTDAG costs on the same blocks.
func WithoutGHOSTDAG() Option { return func(d *DAG) { d.plain = true } }
