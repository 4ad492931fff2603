"""The Zhipu docs' "基础使用示例" for the openai SDK, with only api_key and base_url changed.

Further changes: `max_tokens` is set so that a 0.5B model on two CPU cores answers quickly;
temperature 0 keeps the answers reproducible; `max_retries=0` (the SDK's default is 2, which
would hide an intermittent 429 or 500 behind a silent retry).
"""

from __future__ import annotations

from openai import OpenAI

from .server_process import GlmServe

MAX_TOKENS = 64


def test_simple_chat(server: GlmServe) -> None:
    client = OpenAI(api_key=server.api_key, base_url=server.paas_url, max_retries=0)

    completion = client.chat.completions.create(
        model="glm-4.5-flash",
        messages=[
            {"role": "system", "content": "你是一个有用的AI助手。"},
            {"role": "user", "content": "你好，请介绍一下你自己。"},
        ],
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    print(completion.choices[0].message.content)
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.model == "glm-4.5-flash"
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_streaming_chat(server: GlmServe) -> None:
    client = OpenAI(api_key=server.api_key, base_url=server.paas_url, max_retries=0)

    response = client.chat.completions.create(
        model="glm-4.5-flash",
        messages=[{"role": "user", "content": "写一首关于春天的诗"}],
        stream=True,
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    # The docs index choices[0] on every chunk; that only works if no chunk has empty choices.
    pieces = []
    for chunk in response:
        if chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
            pieces.append(chunk.choices[0].delta.content)
    print()
    assert "".join(pieces).strip()


class ChatBot:
    def __init__(self, api_key: str, base_url: str, model: str = "glm-4.5-flash") -> None:
        self.client = OpenAI(api_key=api_key, base_url=base_url, max_retries=0)
        self.model = model
        self.conversation_history: list[dict[str, str]] = []
        self.prompt_tokens: list[int] = []

    def chat(self, user_input: str) -> str:
        self.conversation_history.append({"role": "user", "content": user_input})
        response = self.client.chat.completions.create(
            model=self.model, messages=self.conversation_history, temperature=0, max_tokens=MAX_TOKENS
        )
        ai_response = response.choices[0].message.content or ""
        self.conversation_history.append({"role": "assistant", "content": ai_response})
        assert response.usage is not None
        self.prompt_tokens.append(response.usage.prompt_tokens)
        return ai_response


def test_multi_turn_chatbot(server: GlmServe) -> None:
    bot = ChatBot(server.api_key, server.paas_url)

    replies = [bot.chat("你好，我叫小明。"), bot.chat("我刚才说我叫什么名字？"), bot.chat("谢谢！")]

    for reply in replies:
        print(reply)
        assert reply.strip()
    assert [m["role"] for m in bot.conversation_history] == ["user", "assistant"] * 3
    # Each turn resends the whole history, so the prompt must grow by at least the last exchange.
    assert bot.prompt_tokens[0] < bot.prompt_tokens[1] < bot.prompt_tokens[2]


class ZhipuConfig:
    """Configuration kept in one class, as the docs recommend for production clients."""

    MODEL = "glm-4.5-flash"
    TIMEOUT = 30
    MAX_RETRIES = 0  # the docs say 3; a test must see every failure

    def __init__(self, api_key: str, base_url: str) -> None:
        self.api_key = api_key
        self.base_url = base_url

    def client(self) -> OpenAI:
        return OpenAI(
            api_key=self.api_key, base_url=self.base_url, timeout=self.TIMEOUT, max_retries=self.MAX_RETRIES
        )


def test_config_class_client(server: GlmServe) -> None:
    config = ZhipuConfig(server.api_key, server.paas_url)
    client = config.client()

    completion = client.chat.completions.create(
        model=config.MODEL,
        messages=[{"role": "user", "content": "用一句话解释什么是机器学习。"}],
        temperature=0,
        max_tokens=MAX_TOKENS,
    )

    print(completion.choices[0].message.content)
    assert completion.choices[0].message.content.strip()
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
