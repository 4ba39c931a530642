// Package catalog is a service catalog replicated by chitchat gossip: each node announces its services and their health in keys of its own, and every node reads the live nodes' keys into a catalog it can query and watch.
//
// There is no server and no quorum: a node's Agent writes
//
//	service:<id>  the service's definition (name, port, tags, meta, address, check)
//	health:<id>   the last result of the service's check, which the owner runs
//
// into its own chitchat state, and gossip carries them to every node. Each
// Agent turns what its chitchat.Server knows into a View: live and dead
// nodes with their service instances and health. A service on a node the
// failure detector finds dead turns critical in the same gossip round (its
// node's health fails), and the node goes from the catalog once chitchat
// forgets it; a node that leaves (chitchat.Server.Leave) goes at once.
// Entries read from gossip are validated (names, ports, sizes); a bad one is
// skipped and counted in Stats, never an error.
//
// Views carry change indexes in the manner of Consul's X-Consul-Index, so
// that a caller can block until the part it watches changes (Agent.Wait).
//
// ExampleAgent shows the whole use: a chitchat Server, an Agent that
// registers a service with a check, runs, and reads the catalog back.
package catalog
