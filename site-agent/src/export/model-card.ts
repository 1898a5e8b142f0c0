/** The prose of an exported model's card (the facts are in its front matter). */
import type { ModelCardFacts } from '@radfed/shared';

export function modelCardProse(facts: ModelCardFacts, o: { localStats: boolean }): string {
  const files = Object.entries(facts.files)
    .map(([name, digest]) => `| \`${name}\` | \`${digest}\` |`)
    .join('\n');
  const metrics = Object.entries(facts.siteMetrics)
    .map(
      ([round, m]) =>
        `| ${round} | ${Object.entries(m)
          .map(([k, v]) => `${k} ${Number(v.toPrecision(4))}`)
          .join(', ')} |`,
    )
    .join('\n');
  const loading =
    facts.format === 'safetensors'
      ? facts.architecture.startsWith('resnet')
        ? [
            '```python',
            'import torch.nn as nn, torchvision, safetensors.torch',
            `m = torchvision.models.${facts.architecture}()`,
            'm.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)',
            'm.fc = nn.Identity()',
            "m.load_state_dict(safetensors.torch.load_file('model.safetensors'), strict=True)",
            'm.eval()  # features = m(x), x of shape [N, 1, S, S], standardised as below',
            '```',
          ].join('\n')
        : 'PyTorch names (`conv1..4.weight` OIHW, `bn1..4.*`); each block is a 3x3 stride-2 conv with TensorFlow "same" padding (0 before, 1 after), batch norm (epsilon 1e-3) and ReLU, then global average pooling.'
      : "```js\nconst model = await tf.loadLayersModel('file:///path/model.json'); // or an https URL in a browser\nconst features = model.predict(x); // x: [N, S, S, 1]\n```";
  return `# ${facts.architecture} pretrained with RadFed (${facts.objective})

A ${facts.architecture} image encoder (one input channel, ${facts.inputSize}x${facts.inputSize}) pretrained by
self-supervision (\`${facts.objective}\`) in federation \`${facts.federationId}\`, without any site's images
leaving the site: each site trained locally and the coordinator added the updates under homomorphic
encryption (\`${facts.hePreset}\`). This is model version ${facts.modelVersion}, produced by sealed round ${facts.rounds}
from ${facts.contributingSites} sites and ${facts.totalSamples} images in total.

Exported and signed by site \`${facts.exportingSite.siteName}\` (\`${facts.exportingSite.siteId}\`), the only kind of
party that can decrypt the aggregate. The signature (\`radfed_signature\`, Ed25519 with the site's enrolled
key) covers this whole card, including the file digests below and the aggregate digest
\`${facts.aggregateDigest}\`, so it binds these plaintext weights to the sealed round in the federation's
ledger. Check it offline with \`radfed audit verify-model DIR EXPORT.ndjson\`.

## Input

Grayscale, ${facts.inputSize}x${facts.inputSize} (the architecture takes other sides too), one channel, standardised
\`${facts.standardisation}\` (see \`config.json\`). The output is the globally pooled feature vector; the pretraining
head is not included.

## Loading

${loading}

## Batch-norm statistics

Under FedBN the batch-norm layers stayed local: their weights, biases and running statistics in this
export are the exporting site's own${o.localStats ? ' (from its last trained round)' : ' (this site has trained no round of this model, so they are the initial values)'}, not a federation average.
Re-estimate them on your data (a pass in train mode) or fine-tune if your images differ from that site's.

## Numerical precision

The aggregate is exact modular arithmetic over fixed-point values; the averaged weights differ from
the exact average by at most ${facts.quantisationErrorBound.toExponential(2)}.

## Metrics this site reported

| round | metrics |
|---|---|
${metrics || '| - | none recorded at this site |'}

Other sites' metrics are in the federation's ledger (\`update.accepted\` entries).

## Intended use and limitations

A starting point for downstream radiology models (fine-tuning, linear probes, retrieval) by the
consortium's members. It is not a diagnostic device and was not validated for any clinical task. Its
features reflect the participating sites' scanners, protocols and populations; check performance on
your own data before relying on it. Self-supervised pretraining used no labels.

## Files

| file | sha256 |
|---|---|
${files}
`;
}
