"""The event pipeline: a batch is acknowledged once appended to the log; consumers then react, in order
per buyer, each with its own durable checkpoint. Domains register consumers (`registry.consumer`)."""

from offerloop.pipeline import partitions as partitions  # registers the log's monthly maintenance job
from offerloop.pipeline.runner import bulk as bulk
from offerloop.pipeline.runner import catch_up as catch_up
from offerloop.pipeline.runner import drain as drain
from offerloop.pipeline.runner import fresh_read as fresh_read
