"""Infrastructure every part of couponmix uses: parameter checks, seeds, threads and worker processes,
progress bars, atomic output folders, safe YAML reading and the allocator of couponmix's own processes."""
