// Package consulcompat tests chitchat-demo's Consul-shaped API with
// Consul's official Go client, github.com/hashicorp/consul/api, against
// real demo processes. It is a module of its own so that the client's
// dependencies stay out of the library's go.mod:
//
//	cd cmd/chitchat-demo/consulcompat && go test ./...
package consulcompat
