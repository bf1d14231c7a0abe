"""Text layer of the synthesis core: speakable text, bounded chunks, and the model's character vocabulary."""

from synth.text.chunk import Chunk, chunk_text, sentence_count
from synth.text.normalize import normalize
from synth.text.vocab import to_vocab

__all__ = ["Chunk", "chunk_text", "normalize", "sentence_count", "to_vocab"]
