// Package wire is a network of access links in userspace: it forwards IPv4
// packets between devices (the TUN files of internal/netbed's AddTUN and
// OpenTUN hosts) by destination address, through a model of each host's
// access link. It exists because the kernels dagnode's test beds run on may
// have no sch_netem (tc knows only htb, tbf and fifo on some).
//
// # The model
//
// Each host i has one access link with a one-way delay d_i, a rate cap in
// each direction (Config.Rate; none when 0) and uniform jitter (plus or
// minus Config.Jitter, drawn per packet and per link). A packet from i to j
// is serialised on i's uplink (queued behind i's earlier packets), crosses it
// in d_i, is serialised on j's downlink (queued behind packets to j from
// every host, in the order they reach it), and crosses it in d_j:
// node-to-node one-way delay is d_i + d_j plus queueing, so between
// d_i + d_j - 2×jitter and d_i + d_j + 2×jitter on idle links. Packets of
// one link never overtake each other, whatever the jitter (as with netem's
// rate). A packet that would wait more than Config.Queue behind others on a
// link is dropped, as a full router buffer would; so is one for an address
// outside the hosts. Every drop is counted (Stats).
//
// # Using it
//
// New checks a Config and starts nothing; Start runs two goroutines per host
// (uplink reader, downlink scheduler) and one writer per host; Close stops
// them and waits, leaving the devices open (their owner, such as the bed,
// closes them). Close unblocks the readers with a read deadline, so a device
// must support deadlines (an *os.File of a non-blocking TUN descriptor, as
// netbed opens them, does; so does a net.Conn).
//
// Users: test/netbench's wire program (a process of its own, so the bench
// can run it outside -race) and `dagnode devnet --latency` (in-process).
package wire
