package sqlstore

import (
	"context"
	"sync"
	"time"

	"fulfill/internal/catalog"
)

// productTTL is how long a product read by SKU is served from memory: a
// checkout looks its products up first, and at a course launch thousands a
// second ask for the same few SKUs. This process's own catalog writes
// clear the cache at once; another replica's are seen within productTTL.
const productTTL = time.Second

// productCache holds recent product lookups by SKU, misses included (a
// SKU that names nothing stays nothing for productTTL).
type productCache struct {
	mu sync.Mutex
	m  map[string]cachedProduct
	// gen changes on every clear, so that a lookup that started before a
	// write does not put the old product back.
	gen uint64
}

type cachedProduct struct {
	p     catalog.Product
	found bool
	until time.Time
}

func (c *productCache) clear() {
	c.mu.Lock()
	c.m, c.gen = nil, c.gen+1
	c.mu.Unlock()
}

// cachedProductsBySKU is ProductsBySKU served from the cache where it can,
// reading the rest in one query.
func (db *DB) cachedProductsBySKU(ctx context.Context, skus []string) (map[string]catalog.Product, error) {
	now := time.Now()
	c := &db.products
	out := make(map[string]catalog.Product, len(skus))
	var missing []string
	c.mu.Lock()
	gen := c.gen
	for _, sku := range skus {
		e, ok := c.m[sku]
		switch {
		case !ok || now.After(e.until):
			missing = append(missing, sku)
		case e.found:
			out[sku] = e.p
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	got, err := db.productsBySKU(ctx, db.rd, missing)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		if c.m == nil || len(c.m) > 10000 {
			c.m = map[string]cachedProduct{}
		}
		for _, sku := range missing {
			p, found := got[sku]
			c.m[sku] = cachedProduct{p: p, found: found, until: now.Add(productTTL)}
		}
	}
	for sku, p := range got {
		out[sku] = p
	}
	return out, nil
}
