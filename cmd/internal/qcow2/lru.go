package qcow2

import "container/list"

// lru is a small least-recently-used cache keyed by host file offset. It
// is not safe for concurrent use; Image guards it with its mutex.
type lru[V any] struct {
	max   int
	order *list.List // front = most recent; elements hold *lruEntry[V]
	items map[uint64]*list.Element
}

type lruEntry[V any] struct {
	key   uint64
	value V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), items: make(map[uint64]*list.Element, max)}
}

func (c *lru[V]) get(key uint64) (V, bool) {
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*lruEntry[V]).value, true
	}
	var zero V
	return zero, false
}

func (c *lru[V]) put(key uint64, value V) {
	if e, ok := c.items[key]; ok {
		e.Value.(*lruEntry[V]).value = value
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&lruEntry[V]{key: key, value: value})
	if c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*lruEntry[V]).key)
	}
}
