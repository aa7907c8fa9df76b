"""Inference records in the exact shapes LiteLLM and Amazon Bedrock write them.

One `Call` (who asked which model what, when, from where) becomes a LiteLLM
StandardLoggingPayload, a LiteLLM SpendLogs row, or a Bedrock model invocation log
record. Field names, nesting and value types mirror the public samples in
`/work/shared/samples` (LiteLLM's pub/sub test payloads, Elastic's Bedrock fixtures):
a parser that reads the demo reads the real thing.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sentinel.demo.world import AWS_ACCOUNT, ApiKey, Model, User, hex_id, rand_str, uuid4


@dataclass
class Call:
    ts: datetime
    prompt: str
    reply: str
    user: User | None
    ip: str
    system: str | None = None
    key: ApiKey | None = None
    model: Model | None = None
    bedrock_model: str = ""
    region: str = ""
    identity_arn: str = ""
    operation: str = ""
    failed: bool = False
    stream: bool = False
    done_marker: bool = False
    """Bedrock stream output ends with a literal "[DONE]" instead of message_stop."""


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _fmt_litellm_time(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S.%f")


def model_map_json(model: Model) -> str:
    """LiteLLM's model_map_information for a model, serialised once and spliced in."""
    value = {
        "key": model.name.split("/")[-1],
        "max_tokens": model.max_tokens,
        "max_input_tokens": 128000,
        "max_output_tokens": model.max_tokens,
        "input_cost_per_token": model.input_cost,
        "cache_creation_input_token_cost": None,
        "cache_read_input_token_cost": model.input_cost / 2,
        "input_cost_per_character": None,
        "output_cost_per_token": model.output_cost,
        "litellm_provider": model.provider,
        "mode": "chat",
        "supports_system_messages": True,
        "supports_response_schema": True,
        "supports_vision": True,
        "supports_function_calling": True,
        "supports_tool_choice": True,
        "supports_prompt_caching": True,
        "tpm": None,
        "rpm": None,
    }
    return json.dumps({"model_map_key": value["key"], "model_map_value": value})


_MMI = "__model_map_information__"


def _messages(call: Call) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if call.system:
        msgs.append({"role": "system", "content": call.system})
    msgs.append({"role": "user", "content": call.prompt})
    return msgs


def litellm_payload(rng: random.Random, call: Call, model_maps: dict[str, str]) -> str:
    """One StandardLoggingPayload as a JSON line (without the newline)."""
    assert call.model is not None and call.key is not None
    model, key = call.model, call.key
    latency = rng.uniform(0.4, 9.0) if not call.failed else rng.uniform(0.05, 0.6)
    end = call.ts + timedelta(seconds=latency)
    first = call.ts + timedelta(seconds=latency * rng.uniform(0.1, 0.4))
    p_tok = tokens(call.prompt) + (tokens(call.system) if call.system else 0)
    c_tok = 0 if call.failed else tokens(call.reply)
    cost = 0.0 if call.failed else p_tok * model.input_cost + c_tok * model.output_cost
    req_id = f"chatcmpl-{uuid4(rng)}"
    model_id = hex_id(rng, 64)
    user_email = call.user.email if call.user else None
    owner = key.owner
    metadata: dict[str, Any] = {
        "user_api_key_hash": key.key_hash,
        "user_api_key_alias": key.alias,
        "user_api_key_team_id": key.team.team_id,
        "user_api_key_org_id": None,
        "user_api_key_user_id": owner.user_id if owner else None,
        "user_api_key_team_alias": key.team.alias,
        "user_api_key_user_email": owner.email if owner else None,
        "spend_logs_metadata": None,
        "requester_ip_address": call.ip,
        "requester_metadata": {},
        "user_api_key_end_user_id": user_email,
        "prompt_management_metadata": None,
        "applied_guardrails": [],
        "mcp_tool_call_metadata": None,
        "vector_store_request_metadata": None,
        "guardrail_information": None,
    }
    if call.failed:
        response: dict[str, Any] | None = None
        error_str = (
            f"litellm.RateLimitError: {model.provider.title()}Exception - Rate limit reached "
            f"for {model.name}. Please try again later."
        )
        error_info = {
            "error_code": "429",
            "error_class": "RateLimitError",
            "llm_provider": model.provider,
            "traceback": "",
            "error_message": error_str,
        }
    else:
        response = {
            "id": req_id,
            "created": int(call.ts.timestamp()),
            "model": model.name.split("/")[-1],
            "object": "chat.completion",
            "system_fingerprint": None,
            "choices": [
                {
                    "finish_reason": "stop",
                    "index": 0,
                    "message": {
                        "content": call.reply,
                        "role": "assistant",
                        "tool_calls": None,
                        "function_call": None,
                        "provider_specific_fields": None,
                    },
                }
            ],
            "usage": {
                "completion_tokens": c_tok,
                "prompt_tokens": p_tok,
                "total_tokens": p_tok + c_tok,
                "completion_tokens_details": None,
                "prompt_tokens_details": None,
            },
        }
        error_str = None
        error_info = {"error_code": "", "error_class": "", "llm_provider": "",
                      "traceback": "", "error_message": ""}
    record: dict[str, Any] = {
        "id": req_id,
        "trace_id": uuid4(rng),
        "call_type": "acompletion",
        "cache_hit": None,
        "stream": call.stream,
        "status": "failure" if call.failed else "success",
        "custom_llm_provider": model.provider,
        "saved_cache_cost": 0.0,
        "startTime": round(call.ts.timestamp(), 6),
        "endTime": round(end.timestamp(), 6),
        "completionStartTime": round(first.timestamp(), 6),
        "response_time": latency,
        "model": model.name,
        "metadata": metadata,
        "cache_key": None,
        "response_cost": cost,
        "total_tokens": p_tok + c_tok,
        "prompt_tokens": p_tok,
        "completion_tokens": c_tok,
        "request_tags": [],
        "end_user": user_email or "",
        "api_base": model.api_base,
        "model_group": model.name,
        "model_id": model_id,
        "requester_ip_address": call.ip,
        "messages": _messages(call),
        "response": response,
        "model_parameters": {"temperature": 0.2, "max_tokens": 2048},
        "hidden_params": {
            "model_id": model_id,
            "cache_key": None,
            "api_base": model.api_base,
            "response_cost": cost,
            "additional_headers": {},
            "litellm_overhead_time_ms": round(rng.uniform(1.0, 12.0), 3),
            "batch_models": None,
            "litellm_model_name": model.name,
        },
        "model_map_information": _MMI,
        "error_str": error_str,
        "error_information": error_info,
        "response_cost_failure_debug_info": None,
        "guardrail_information": None,
        "standard_built_in_tools_params": {"web_search_options": None, "file_search": None},
    }
    line = json.dumps(record)
    return line.replace(f'"{_MMI}"', model_maps[model.name], 1)


def spend_log_row(rng: random.Random, call: Call) -> dict[str, Any]:
    """A row of LiteLLM's SpendLogs table as a DB export writes it: JSON in strings."""
    assert call.model is not None and call.key is not None
    model, key = call.model, call.key
    latency = rng.uniform(0.4, 6.0)
    p_tok, c_tok = tokens(call.prompt), tokens(call.reply)
    cost = p_tok * model.input_cost + c_tok * model.output_cost
    meta: dict[str, Any] = {
        "applied_guardrails": [],
        "usage_object": {"completion_tokens": c_tok, "prompt_tokens": p_tok,
                         "total_tokens": p_tok + c_tok, "completion_tokens_details": None,
                         "prompt_tokens_details": None},
        "user_api_key": key.key_hash,
        "user_api_key_alias": key.alias,
        "user_api_key_team_id": key.team.team_id,
        "user_api_key_org_id": None,
        "user_api_key_user_id": key.owner.user_id if key.owner else None,
        "user_api_key_team_alias": key.team.alias,
        "spend_logs_metadata": None,
        "requester_ip_address": call.ip,
        "user_agent": "OpenAI/Python 1.82.0",
        "status": "success",
        "error_information": None,
    }
    req_id = f"chatcmpl-{uuid4(rng)}"
    response = {"id": req_id, "object": "chat.completion", "model": model.name,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": call.reply}}]}
    return {
        "request_id": req_id,
        "session_id": uuid4(rng),
        "call_type": "acompletion",
        "api_key": key.key_hash,
        "cache_hit": "None",
        "startTime": _fmt_litellm_time(call.ts),
        "endTime": _fmt_litellm_time(call.ts + timedelta(seconds=latency)),
        "completionStartTime": _fmt_litellm_time(call.ts + timedelta(seconds=latency / 3)),
        "model": model.name,
        "user": key.owner.user_id if key.owner else "",
        "team_id": key.team.team_id,
        "organization_id": "",
        "metadata": json.dumps(meta),
        "cache_key": "Cache OFF",
        "spend": cost,
        "total_tokens": p_tok + c_tok,
        "prompt_tokens": p_tok,
        "completion_tokens": c_tok,
        "request_tags": "[]",
        "end_user": call.user.email if call.user else "",
        "api_base": model.api_base,
        "model_group": model.name,
        "model_id": hex_id(rng, 64),
        "requester_ip_address": call.ip,
        "custom_llm_provider": model.provider,
        "messages": json.dumps(_messages(call)),
        "response": json.dumps(response),
        "proxy_server_request": json.dumps({"model": model.name,
                                            "messages": _messages(call)}),
        "status": "success",
        "mcp_namespaced_tool_name": None,
        "agent_id": None,
    }


def _bedrock_msg_id(rng: random.Random) -> str:
    return "msg_bdrk_01" + rand_str(rng, string.ascii_letters + string.digits, 22)


def bedrock_record(rng: random.Random, call: Call) -> dict[str, Any]:
    """One Bedrock ModelInvocationLog record (schemaVersion 1.0)."""
    p_tok, c_tok = tokens(call.prompt), tokens(call.reply)
    latency = rng.randint(400, 9000)
    op = call.operation
    if op.startswith("Converse"):
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": [{"text": call.prompt}]}],
            "inferenceConfig": {"maxTokens": 2048, "temperature": 0.3, "topP": 0.9},
        }
        if call.system:
            body["system"] = [{"text": call.system}]
        out: Any = {
            "output": {"message": {"role": "assistant", "content": [{"text": call.reply}]}},
            "stopReason": "end_turn",
            "metrics": {"latencyMs": latency},
            "usage": {"inputTokens": p_tok, "outputTokens": c_tok,
                      "totalTokens": p_tok + c_tok},
        }
    else:
        body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 2048}
        if call.system:
            body["system"] = call.system
        body["messages"] = [{"role": "user",
                             "content": [{"type": "text", "text": call.prompt}]}]
        body["temperature"] = 0.3
        model_name = call.bedrock_model.split("anthropic.")[-1].rsplit("-v", 1)[0]
        if op == "InvokeModelWithResponseStream":
            out = _stream_events(rng, call, model_name, p_tok, c_tok, latency)
        else:
            out = {"id": _bedrock_msg_id(rng), "type": "message", "role": "assistant",
                   "model": model_name,
                   "content": [{"type": "text", "text": call.reply}],
                   "stop_reason": "end_turn", "stop_sequence": None,
                   "usage": {"input_tokens": p_tok, "output_tokens": c_tok}}
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": call.ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accountId": AWS_ACCOUNT,
        "identity": {"arn": call.identity_arn},
        "region": call.region,
        "requestId": uuid4(rng),
        "operation": op,
        "modelId": call.bedrock_model,
        "input": {"inputContentType": "application/json", "inputBodyJson": body,
                  "inputTokenCount": p_tok},
        "output": {"outputContentType": "application/json", "outputBodyJson": out,
                   "outputTokenCount": c_tok},
    }


def _stream_events(
    rng: random.Random, call: Call, model_name: str, p_tok: int, c_tok: int, latency: int
) -> list[Any]:
    """Anthropic stream events as Bedrock logs them; some end with "[DONE]"."""
    events: list[Any] = [
        {"type": "message_start",
         "message": {"id": _bedrock_msg_id(rng), "type": "message", "role": "assistant",
                     "content": [], "model": model_name,
                     "usage": {"input_tokens": p_tok, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
    ]
    words = call.reply.split(" ")
    step = max(1, len(words) // 8)
    for i in range(0, len(words), step):
        chunk = " ".join(words[i : i + step])
        text = chunk if i == 0 else " " + chunk
        events.append({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": text}})
    events.append({"type": "content_block_stop", "index": 0})
    events.append({"type": "message_delta",
                   "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": c_tok}})
    if call.done_marker:
        events.append("[DONE]")
    else:
        events.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": p_tok, "outputTokenCount": c_tok,
            "invocationLatency": latency, "firstByteLatency": latency // 6}})
    return events
