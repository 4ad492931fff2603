"""The OpenAI Responses API front-end: ``input`` items in, ``output`` items and typed SSE events out.

A front-end over the one pipeline: ``translate`` turns a request (and the stored conversation
behind ``previous_response_id``) into a ``ChatCompletionRequest`` for ``build_plan``; ``render``
turns the pipeline's events into a Response object or its stream of events; ``service`` keeps
stored responses and runs ``background`` ones.
"""
