"""One module per area: each registers the entities devices hold and the named
mutators they send (`sync.registry.entity`, `@mutator`). Imported by `registry.load()`."""
