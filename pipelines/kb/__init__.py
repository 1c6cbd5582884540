"""The national knowledge base (医保智能监管"两库"知识库) as published: batch files -> versioned kb releases."""
