class LocalVectorStore: pass
