"""gorp-client for Python (asyncio): connect to gorpd, publish with a window
and resends after reconnects, subscribe with acks and resume-from-cursor.

    async with Client("http://127.0.0.1:7730") as client:   # admin token found locally
        publisher = client.publisher()
        await publisher.publish(Message(Channel("myapp", "room-1"), "m-1", "hello"))
"""

from ._bind import BindFeed, BindingChange
from ._client import TOKEN_ENV, Client, default_data_dir
from ._publisher import Publisher
from ._subscription import Subscription
from ._types import CaughtUp, Channel, Chunk, Closed, Event, GorpError, Message, Published, Rejected, Response

__all__ = ["TOKEN_ENV", "BindFeed", "BindingChange", "CaughtUp", "Channel", "Chunk", "Client", "Closed", "Event", "GorpError", "Message",
           "Published", "Publisher", "Rejected", "Response", "Subscription", "default_data_dir"]
