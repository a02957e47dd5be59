// `windowpane-cli serve` through the official OpenAI client (the `openai` npm package), run by
// tests/server/conformance_test.sh, which starts the servers and passes them in the environment:
//   OPENAI_DIR  the folder npm installed openai into       BASE  the open server (http://host:port)
//   KEYED_BASE  a server started with --api-key API_KEY    SHARED  the shared fixtures folder
//   CHAT_MODEL  the causal LM's id (tiny-qwen2)             HEADS  the task-head models' ids, comma separated
//   CTX  the open server's --ctx
// Every expected value comes from the server's own answers (stream vs whole, alone vs batched) or
// from the fixtures' reference files; nothing is timed.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(process.env.OPENAI_DIR + '/');
const openaiModule = require('openai');
const OpenAI = openaiModule.OpenAI ?? openaiModule.default ?? openaiModule;

const BASE = process.env.BASE;
const SHARED = process.env.SHARED;
const MODEL = process.env.CHAT_MODEL;
const HEADS = process.env.HEADS.split(',');
const CTX = Number(process.env.CTX);
const client = new OpenAI({ baseURL: BASE + '/v1', apiKey: 'unused', maxRetries: 0 });

let checks = 0;
const step = (name) => console.log(`-- ${name}`);
const ok = (cond, msg) => { assert.ok(cond, msg); ++checks; };
const eq = (a, b, msg) => { assert.deepEqual(a, b, msg); ++checks; };

const reference = (folder, kase) => JSON.parse(readFileSync(`${SHARED}/${folder}/reference/${kase}.json`, 'utf8'));

// A streamed request's text, finish reason, usage, logprob entries, chunks; `onChunk` may abort.
async function collect(stream, kind, onChunk) {
  let text = '', finish = null, usage = null, chunks = 0, roleSeen = false;
  const logprobs = [];
  for await (const chunk of stream) {
    ++chunks;
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    const c = chunk.choices[0];
    if (kind === 'chat') {
      if (c.delta.role) { eq(c.delta.role, 'assistant'); roleSeen = true; }
      if (c.delta.content) text += c.delta.content;
      if (c.logprobs?.content) logprobs.push(...c.logprobs.content);
    } else {
      text += c.text;
      if (c.logprobs?.tokens) logprobs.push(...c.logprobs.tokens.map((t, i) => ({ token: t, logprob: c.logprobs.token_logprobs[i] })));
    }
    if (c.finish_reason) finish = c.finish_reason;
    if (onChunk) onChunk(text);
  }
  if (kind === 'chat') ok(roleSeen, 'the first chat chunk names the role');
  return { text, finish, usage, chunks, logprobs };
}

async function expectError(promise, status, param) {
  try {
    await promise;
  } catch (e) {
    eq(e.status, status, `status of ${e.message}`);
    if (param !== undefined) eq(e.param ?? e.error?.param, param, `param of ${e.message}`);
    ok(typeof (e.error?.message) === 'string' && e.error.message.length > 0, 'an OpenAI error body');
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

async function raw(path, init = {}) {
  const res = await fetch(BASE + path, init);
  const body = await res.text();
  let json = null;
  try { json = JSON.parse(body); } catch { /* metrics */ }
  return { status: res.status, headers: res.headers, body, json };
}

function metric(text, name, labels) {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [key, value] = line.split(' ');
    if (key === name + (labels ? `{${labels}}` : '')) return Number(value);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
step('models');
const models = await client.models.list();
const ids = models.data.map((m) => m.id);
ok(ids.includes(MODEL), `models list ${MODEL}: ${ids}`);
for (const h of HEADS) ok(ids.includes(h), `models list ${h}`);
for (const m of models.data) eq(m.object, 'model');

step('chat: whole and streamed, greedy, logprobs');
const chatCase = reference('fixtures/tiny-qwen2', 'chat69');  // Qwen2.5's template, user "Who wrote Psalm 23?"
const chatReq = {
  model: MODEL, messages: [{ role: 'user', content: 'Who wrote Psalm 23?' }],
  temperature: 0, max_tokens: 16, logprobs: true, top_logprobs: 3,
};
const whole = await client.chat.completions.create(chatReq);
ok(whole.id.startsWith('chatcmpl-'), 'chat id');
eq(whole.object, 'chat.completion');
eq(whole.model, MODEL);
eq(whole.choices.length, 1);
eq(whole.choices[0].index, 0);
eq(whole.choices[0].message.role, 'assistant');
ok(['stop', 'length'].includes(whole.choices[0].finish_reason), 'finish_reason');
eq(whole.usage.prompt_tokens, chatCase.input_ids.length, 'prompt tokens = the tokenizer\'s count of the rendered template');
eq(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens);
ok(whole.usage.completion_tokens >= 1 && whole.usage.completion_tokens <= 16, 'completion tokens within max_tokens');
const lp = whole.choices[0].logprobs.content;
eq(lp.length, whole.usage.completion_tokens, 'one logprob entry per generated token');
for (const e of lp) {
  ok(e.logprob <= 1e-6, 'a logprob is <= 0');
  eq(e.top_logprobs.length, 3);
  ok(Array.isArray(e.bytes), 'bytes');
  for (let i = 1; i < 3; ++i) ok(e.top_logprobs[i - 1].logprob >= e.top_logprobs[i].logprob, 'alternatives best first');
  ok(e.top_logprobs[0].logprob >= e.logprob - 1e-5, 'greedy: the best alternative is at least the chosen');
  ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-5, 'greedy: the chosen token is the best');
}
const streamed = await collect(await client.chat.completions.create({ ...chatReq, stream: true, stream_options: { include_usage: true } }), 'chat');
eq(streamed.text, whole.choices[0].message.content, 'streamed greedy text = whole text');
eq(streamed.finish, whole.choices[0].finish_reason);
eq(streamed.usage, whole.usage, 'usage chunk = whole usage');
eq(streamed.logprobs.map((e) => e.token), lp.map((e) => e.token), 'streamed logprob tokens = whole ones');
const noUsage = await collect(await client.chat.completions.create({ ...chatReq, stream: true }), 'chat');
eq(noUsage.usage, null, 'no usage chunk unless asked');
eq(noUsage.text, streamed.text);

step('completions: whole and streamed, logprobs');
const seq12 = reference('fixtures/tiny-qwen2', 'seq12');
const textReq = { model: MODEL, prompt: seq12.text, temperature: 0, max_tokens: 16, logprobs: 2 };
const cw = await client.completions.create(textReq);
ok(cw.id.startsWith('cmpl-'), 'completion id');
eq(cw.object, 'text_completion');
eq(cw.usage.prompt_tokens, seq12.input_ids.length, 'prompt tokens = the tokenizer\'s count');
const clp = cw.choices[0].logprobs;
eq(clp.tokens.length, cw.usage.completion_tokens);
eq(clp.token_logprobs.length, clp.tokens.length);
eq(clp.top_logprobs.length, clp.tokens.length);
eq(clp.text_offset.length, clp.tokens.length);
for (let i = 0; i < clp.tokens.length; ++i) {
  const alts = Object.values(clp.top_logprobs[i]);
  ok(alts.length >= 1 && alts.length <= 2, 'up to 2 alternatives');
  ok(Math.max(...alts) >= clp.token_logprobs[i] - 1e-5, 'greedy: best alternative >= chosen');
  if (i) ok(clp.text_offset[i] >= clp.text_offset[i - 1], 'offsets grow');
}
const cs = await collect(await client.completions.create({ ...textReq, stream: true, stream_options: { include_usage: true } }), 'text');
eq(cs.text, cw.choices[0].text, 'streamed completion = whole completion');
eq(cs.usage, cw.usage);
eq(cs.logprobs.map((e) => e.token), clp.tokens);

step('stop sequences');
{
  const T = cw.choices[0].text;
  ok(T.length >= 6, `a long enough greedy text: ${JSON.stringify(T)}`);
  const k = Math.floor(T.length / 2);
  const stop = T.slice(k, k + 2);
  const expected = T.slice(0, T.indexOf(stop));
  const w = await client.completions.create({ model: MODEL, prompt: seq12.text, temperature: 0, max_tokens: 16, stop: [stop, 'zzzzzz'] });
  eq(w.choices[0].text, expected, `text cut before the stop ${JSON.stringify(stop)}`);
  eq(w.choices[0].finish_reason, 'stop');
  const s = await collect(await client.completions.create({ model: MODEL, prompt: seq12.text, temperature: 0, max_tokens: 16, stop, stream: true }), 'text');
  eq(s.text, expected, 'streamed text cut before the stop');
  eq(s.finish, 'stop');
}

step('seeds');
{
  const ask = (seed) => client.completions.create({ model: MODEL, prompt: seq12.text, temperature: 1, max_tokens: 24, seed })
    .then((r) => r.choices[0].text);
  const a = await ask(42), b = await ask(42);
  eq(a, b, 'the same seed gives the same text');
  const others = await Promise.all([43, 44, 45, 46].map(ask));
  ok(others.some((t) => t !== a), 'different seeds give different texts (at least one of four)');
}

step('errors');
await expectError(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), 404, 'model');
await expectError(client.chat.completions.create({ ...chatReq, logit_bias: { 1: 2 } }), 400, 'logit_bias');
await expectError(client.chat.completions.create({ ...chatReq, frobnicate: true }), 400, 'frobnicate');
await expectError(client.chat.completions.create({ ...chatReq, temperature: 'warm' }), 400, 'temperature');
await expectError(client.completions.create({ model: MODEL, prompt: 'word '.repeat(CTX + 10), max_tokens: 4 }), 400, 'prompt');
await expectError(client.completions.create({ model: MODEL, prompt: seq12.text, max_tokens: CTX * 4 }), 400, 'max_tokens');
await expectError(client.completions.create({ model: HEADS[0], prompt: 'x' }), 400, 'model');
{
  const bad = await raw('/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"model": "x", ' });
  eq(bad.status, 400, 'bad JSON is 400');
  eq(bad.json.error.type, 'invalid_request_error');
  const huge = await raw('/v1/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: 'x'.repeat(9 << 20) });
  eq(huge.status, 413, 'a huge body is 413');
  ok(typeof huge.json.error.message === 'string', '413 has an OpenAI error body');
  const none = await raw('/v1/nothing');
  eq(none.status, 404);
  ok(none.json.error.message.includes('/v1/nothing'), '404 names the route');
}
{
  const keyed = new OpenAI({ baseURL: process.env.KEYED_BASE + '/v1', apiKey: 'wrong-key', maxRetries: 0 });
  await expectError(keyed.models.list(), 401);
  const good = new OpenAI({ baseURL: process.env.KEYED_BASE + '/v1', apiKey: process.env.API_KEY, maxRetries: 0 });
  ok((await good.models.list()).data.length >= 1, 'the right key passes');
  const health = await fetch(process.env.KEYED_BASE + '/health');
  eq(health.status, 200, '/health needs no key');
  const metricsNoKey = await fetch(process.env.KEYED_BASE + '/metrics');
  eq(metricsNoKey.status, 401, '/metrics needs the key');
}

step('16 concurrent streams on --parallel 4, some cancelled');
{
  // Each request alone first (whole, not streamed): the texts the batched streams must give.
  const requests = [];
  for (let i = 0; i < 16; ++i) {
    const seeded = i % 2 === 1;
    const sampling = seeded ? { temperature: 1, seed: 1000 + i } : { temperature: 0 };
    if (i % 4 < 2) {
      requests.push({ kind: 'chat', body: { model: MODEL, messages: [{ role: 'user', content: `Question ${i}: who begat whom?` }], max_tokens: 20 + i, ...sampling } });
    } else {
      requests.push({ kind: 'text', body: { model: MODEL, prompt: `${seq12.text} ${i}`, max_tokens: 20 + i, ...sampling } });
    }
  }
  const alone = [];
  for (const r of requests) {
    const res = r.kind === 'chat' ? await client.chat.completions.create(r.body) : await client.completions.create(r.body);
    alone.push(r.kind === 'chat' ? res.choices[0].message.content : res.choices[0].text);
  }
  // A fixed pattern of cancellations (by index), at random points of the stream.
  const cancel = new Set([1, 4, 6, 11, 13]);
  const results = await Promise.all(requests.map(async (r, i) => {
    const controller = new AbortController();
    const abortAfter = 1 + Math.floor(Math.random() * 6);
    const body = { ...r.body, stream: true };
    try {
      const stream = r.kind === 'chat'
        ? await client.chat.completions.create(body, { signal: controller.signal })
        : await client.completions.create(body, { signal: controller.signal });
      let seen = 0;
      let partial = '';
      const out = await collect(stream, r.kind, (text) => {
        partial = text;
        if (cancel.has(i) && ++seen >= abortAfter) controller.abort();
      });
      return { i, done: !controller.signal.aborted, text: controller.signal.aborted ? partial : out.text };
    } catch (e) {
      if (!cancel.has(i) || !controller.signal.aborted) throw e;
      return { i, done: false, text: '' };
    }
  }));
  let completed = 0;
  for (const r of results) {
    if (!r.done) {
      ok(alone[r.i].startsWith(r.text), `cancelled stream ${r.i}: what came is the start of its own text`);
      continue;
    }
    ++completed;
    eq(r.text, alone[r.i], `stream ${r.i} batched = alone`);
  }
  ok(completed >= 16 - cancel.size, `every stream not cancelled completed (${completed})`);
  // The cancelled ones leave the batch: the scheduler empties.
  let active = -1, queued = -1;
  for (let tries = 0; tries < 600; ++tries) {
    const m = (await raw('/metrics')).body;
    active = metric(m, 'windowpane_active_sequences', `model="${MODEL}"`);
    queued = metric(m, 'windowpane_queue_depth', `model="${MODEL}"`);
    if (active === 0 && queued === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  eq([active, queued], [0, 0], 'no sequence left running after the cancellations');
  const after = await client.chat.completions.create({ ...chatReq, logprobs: false, top_logprobs: undefined });
  eq(after.choices[0].message.content, whole.choices[0].message.content, 'the server still answers, the same');
}

step('/health and /metrics');
{
  const h = await raw('/health');
  eq(h.status, 200);
  eq(h.json.status, 'ok');
  const m = await raw('/metrics');
  eq(m.status, 200);
  ok(m.headers.get('content-type').startsWith('text/plain'), 'Prometheus text');
  ok(metric(m.body, 'windowpane_requests_total', 'endpoint="/v1/chat/completions",status="200"') > 0, 'chat requests counted');
  ok(metric(m.body, 'windowpane_requests_total', 'endpoint="/v1/chat/completions",status="400"') > 0, '400s counted');
  ok(metric(m.body, 'windowpane_requests_total', 'endpoint="/v1/completions",status="413"') > 0, '413 counted');
  ok(metric(m.body, 'windowpane_completion_tokens_total', `model="${MODEL}"`) > 0, 'completion tokens counted');
  ok(metric(m.body, 'windowpane_prompt_tokens_total', `model="${MODEL}"`) > 0, 'prompt tokens counted');
  ok(metric(m.body, 'windowpane_time_to_first_token_seconds_count', `model="${MODEL}"`) > 0, 'time to first token');
  ok(metric(m.body, 'windowpane_decode_tokens_per_second', `model="${MODEL}"`) > 0, 'tokens/s');
}

step('/classify and /score (vLLM shapes)');
{
  const post = (path, body) => raw(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  for (const head of HEADS) {
    const ref = reference(`heads/${head}`, 'seq12');
    const r = await post('/classify', { model: head, input: [ref.text, 'In the beginning'] });
    eq(r.status, 200, JSON.stringify(r.json));
    ok(r.json.id.startsWith('classify-'), 'classify id');
    eq(r.json.object, 'list');
    eq(r.json.model, head);
    eq(r.json.data.length, 2);
    const d = r.json.data[0];
    eq(d.index, 0);
    eq(d.num_classes, ref.logits.length);
    eq(d.probs.length, ref.logits.length);
    if (ref.logits.length === 1) {
      ok(Math.abs(d.probs[0] - ref.score) < 1e-4, `sigmoid score ${d.probs[0]} vs reference ${ref.score}`);
    } else {
      eq(d.label, ref.label);
      ok(Math.abs(Math.max(...d.probs) - ref.score) < 1e-4, `softmax score ${Math.max(...d.probs)} vs reference ${ref.score}`);
      ok(Math.abs(d.probs.reduce((a, b) => a + b, 0) - 1) < 1e-5, 'probabilities sum to 1');
    }
    ok(r.json.usage.prompt_tokens > ref.input_ids.length, 'usage counts both inputs');
    const one = await post('/classify', { model: head, input: ref.text });
    eq(one.json.usage.prompt_tokens, ref.input_ids.length, 'prompt tokens = the reference ids');
    // Packed with another input, the pass rounds differently (Model::forward_packed): close, not equal.
    one.json.data[0].probs.forEach((p, k) => ok(Math.abs(p - d.probs[k]) < 1e-5, 'an input alone ~ the same input among others'));
    if (ref.logits.length === 1) {
      const s = await post('/score', { model: head, text_1: 'And God said', text_2: ['Let there be light', 'and there was light'] });
      eq(s.status, 200, JSON.stringify(s.json));
      eq(s.json.object, 'list');
      eq(s.json.data.length, 2);
      for (const x of s.json.data) { eq(x.object, 'score'); ok(x.score > 0 && x.score < 1, 'a sigmoid score'); }
      const z = await post('/score', { model: head, text_1: ['And God said', 'And God said'], text_2: ['Let there be light', 'and there was light'] });
      eq(z.json.data.map((x) => x.score), s.json.data.map((x) => x.score), 'one text_1 is paired with every text_2');
    } else {
      const s = await post('/score', { model: head, text_1: 'a', text_2: 'b' });
      eq(s.status, 400, '/score takes one-label models');
    }
  }
  const wrong = await post('/classify', { model: MODEL, input: 'x' });
  eq(wrong.status, 400, '/classify refuses a causal LM');
  eq(wrong.json.error.param, 'model');
}

console.log(`conformance: ${checks} checks passed`);
