"""The event pipeline: a batch is acknowledged once appended to the log; consumers then react, in order
per buyer, each with its own durable checkpoint. Domains register consumers (`registry.consumer`)."""
