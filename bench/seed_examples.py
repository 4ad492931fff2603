"""The seed document's openai-SDK examples as request arguments, for ``bench/quality.py``.

Each is the keyword arguments of ``client.chat.completions.create`` exactly as the example
passes them: no ``max_tokens``, the example's own sampling (only the story sets any). The
prompts are those of Zhipu's OpenAI-compatibility page (docs.bigmodel.cn, "OpenAI API 兼容")
that the seed quotes; ``tests/api/test_seed_examples.py`` runs the same examples as code.
"""

from __future__ import annotations

from typing import Any

MODEL = "glm-4.6"

STORY: dict[str, Any] = {
    "messages": [
        {"role": "system", "content": "你是一个聪明且富有创造力的小说作家"},
        {"role": "user", "content": "请你作为童话故事大王，写一篇短篇童话故事"},
    ],
    "top_p": 0.7,
    "temperature": 0.9,
}

POEM: dict[str, Any] = {"messages": [{"role": "user", "content": "写一首关于春天的诗"}]}

THINKING: dict[str, Any] = {
    "messages": [{"role": "user", "content": "为什么天空是蓝色的？"}],
    "extra_body": {"thinking": {"type": "enabled"}},
}

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "获取指定城市的天气信息",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "城市名称，如：北京、上海"}},
            "required": ["location"],
        },
    },
}

FUNCTION_CALL: dict[str, Any] = {
    "messages": [{"role": "user", "content": "北京今天天气怎么样？"}],
    "tools": [WEATHER_TOOL],
    "tool_choice": "auto",
}

# The ChatBot class: three user turns, each resending the whole history.
CHATBOT_TURNS = ("你好，我叫小明。", "我刚才说我叫什么名字？", "谢谢！")

SINGLE: dict[str, dict[str, Any]] = {
    "story": STORY,
    "poem": POEM,
    "thinking": THINKING,
    "function_call": FUNCTION_CALL,
}
EXAMPLES = (*SINGLE, "chatbot")
