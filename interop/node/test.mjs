// The official Anthropic and OpenAI Node SDKs, unmodified, against
// streamgate proxy in front of the simulator. Started by
// interop/interop_test.go, which passes:
//   STREAMGATE_PROXY_URL       the proxy's base URL
//   STREAMGATE_INTEROP_CASES   JSON {name: {prompt, text, tokens}}: each
//                              prompt and the exact answer the simulator gives
// The SDKs' own retries are off: a complete answer after an injected fault
// shows the proxy recovered it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';

const base = process.env.STREAMGATE_PROXY_URL;
const cases = JSON.parse(process.env.STREAMGATE_INTEROP_CASES ?? '{}');
if (!base) {
  throw new Error('STREAMGATE_PROXY_URL is not set: run this through `go test ./interop/`');
}

const anthropic = (headers = {}) =>
  new Anthropic({ baseURL: base, apiKey: 'sk-ant-node-interop', maxRetries: 0, defaultHeaders: headers });
const openai = (headers = {}) =>
  new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sk-node-interop', maxRetries: 0, defaultHeaders: headers });

const fault = (spec, id) => ({ 'x-sim-fault': `${spec};id=${id}` });

function want(name) {
  const c = cases[name];
  assert.ok(c, `no case ${name}`);
  return c;
}

const messageParams = (c) => ({
  model: 'claude-sonnet-4-5',
  max_tokens: 1000,
  messages: [{ role: 'user', content: c.prompt }],
});

const chatParams = (c) => ({
  model: 'gpt-4o',
  messages: [{ role: 'user', content: c.prompt }],
});

const text = (msg) => msg.content.map((b) => b.text ?? '').join('');

test('anthropic: non-streaming', async () => {
  const c = want('anthropic-create');
  const msg = await anthropic().messages.create(messageParams(c));
  assert.equal(text(msg), c.text);
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.usage.output_tokens, c.tokens);
});

test('anthropic: streaming with messages.stream', async () => {
  const c = want('anthropic-stream');
  const msg = await anthropic().messages.stream(messageParams(c)).finalMessage();
  assert.equal(text(msg), c.text);
  assert.equal(msg.stop_reason, 'end_turn');
});

test('anthropic: raw event stream ends with message_stop', async () => {
  const c = want('anthropic-raw');
  const stream = await anthropic().messages.create({ ...messageParams(c), stream: true });
  let got = '';
  const types = [];
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') got += ev.delta.text;
  }
  assert.equal(got, c.text);
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
});

test('anthropic: count tokens', async () => {
  const c = want('anthropic-count');
  const n = await anthropic().messages.countTokens({ model: 'claude-sonnet-4-5', messages: messageParams(c).messages });
  assert.equal(n.input_tokens, c.tokens);
});

for (const spec of ['529', '429;retry=0.05', '500', 'reset']) {
  test(`anthropic: streaming recovers from a pre-stream ${spec}`, async () => {
    const c = want(`anthropic-fault-${spec}`);
    const msg = await anthropic(fault(spec, `node-a-${spec.split(';')[0]}`)).messages.stream(messageParams(c)).finalMessage();
    assert.equal(text(msg), c.text);
  });
}

test('anthropic: a stream cut mid-answer is never a shorter success', async () => {
  const c = want('anthropic-midstream');
  let msg;
  let error;
  try {
    msg = await anthropic(fault('drop-midstream;at=20;cut=5', 'node-a-mid')).messages.stream(messageParams(c)).finalMessage();
  } catch (err) {
    error = err;
  }
  if (error === undefined) {
    assert.equal(text(msg), c.text, 'the stream ended without an error, so it must be the whole answer');
  }
});

test('openai: non-streaming', async () => {
  const c = want('openai-create');
  const res = await openai().chat.completions.create(chatParams(c));
  assert.equal(res.choices[0].message.content, c.text);
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.equal(res.usage.completion_tokens, c.tokens);
});

async function openaiStream(client, c) {
  const stream = await client.chat.completions.create({ ...chatParams(c), stream: true, stream_options: { include_usage: true } });
  let got = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      got += choice.delta?.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  return { got, finish, usage };
}

test('openai: streaming with usage', async () => {
  const c = want('openai-stream');
  const { got, finish, usage } = await openaiStream(openai(), c);
  assert.equal(got, c.text);
  assert.equal(finish, 'stop');
  assert.equal(usage?.completion_tokens, c.tokens);
});

for (const spec of ['429;retry=0.05', '503', 'reset']) {
  test(`openai: streaming recovers from a pre-stream ${spec}`, async () => {
    const c = want(`openai-fault-${spec}`);
    const { got, finish } = await openaiStream(openai(fault(spec, `node-o-${spec.split(';')[0]}`)), c);
    assert.equal(got, c.text);
    assert.equal(finish, 'stop');
  });
}

test('openai: a stream cut mid-answer is never a shorter success', async () => {
  const c = want('openai-midstream');
  let res;
  let error;
  try {
    res = await openaiStream(openai(fault('drop-midstream;at=20;cut=5', 'node-o-mid')), c);
  } catch (err) {
    error = err;
  }
  if (error === undefined) {
    assert.equal(res.got, c.text, 'the stream ended without an error, so it must be the whole answer');
  }
});
