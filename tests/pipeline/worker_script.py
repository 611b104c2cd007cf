"""A worker process running the pipeline's consumers (the test ones) until it is killed."""

import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import support

from offerloop.config import Settings
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.pipeline import runner

support.register()
settings = Settings()
runner.configure(settings)
workers = runner.PipelineWorkers(Database(make_engine(settings.database_url)), threads=2, poll_s=0.2)
workers.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
workers.stop()
