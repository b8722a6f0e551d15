package pybridgetest

import "sync"

// VLAN is a fake VLAN switch that records partitions.
type VLAN struct {
	id     int
	mu     sync.Mutex
	groups [][]string
}

// NewVLAN returns VLAN id.
func NewVLAN(id int) *VLAN { return &VLAN{id: id} }

// ID returns the VLAN number.
func (v *VLAN) ID() int { return v.id }

// SetPartition records groups.
func (v *VLAN) SetPartition(groups [][]string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.groups = groups
	return nil
}

// Heal clears the partition.
func (v *VLAN) Heal() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.groups = nil
}

// Partition returns the current partition (nil when healed).
func (v *VLAN) Partition() [][]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.groups
}
